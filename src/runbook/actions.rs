//! What each runbook action does. Every provider or store call goes plan → record →
//! (drill: not sent | live: approval for writes → send) → record the response.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde_json::{Value, json};

use super::action::{Action, StepId};
use super::engine::{ActionOutcome, Ctx, Failure, KeyRun};
use super::gate::{ApprovalRequest, Decision, Gate, ManualRequest, PasteRequest, Sink};
use super::session::Status;
use crate::plan::{Access, RequestPlan, SecretRef};
use crate::provider::{
    Identity, KeyState, Op, OpOutput, Probe, ProviderError, UsageReport, Which, manual_reason,
};
use crate::store::{StoreError, StoreOp, StoreOutput, StoreVersion};

type Res = Result<ActionOutcome, Failure>;

/// Individual access events kept in the record per key (the count is always recorded).
const EVIDENCE_EVENTS: usize = 500;

fn provider_failure(step: StepId, e: &ProviderError) -> Failure {
    Failure::Failed {
        error: format!("{step}: {e}"),
        status: e.status(),
        retryable: e.retryable(),
    }
}

fn store_failure(step: StepId, e: &StoreError) -> Failure {
    let status = match e {
        StoreError::Http(h) => h.status(),
        _ => None,
    };
    Failure::Failed {
        error: format!("{step}: store: {e}"),
        status,
        retryable: true,
    }
}

/// The start of the baseline before a window. The window's start can come back from a
/// record (`exposed_since`), so the subtraction is checked: a crafted date near chrono's
/// limits gives an empty baseline, never a panic.
fn baseline_start(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    start
        .checked_sub_signed(Duration::days(i64::from(days)))
        .unwrap_or(start)
}

/// How the key is looked up: the id the incident found, the inventory's id, or its hint.
fn locate_op(run: &KeyRun) -> Op {
    Op::Locate {
        id: run
            .facts
            .provider_key_id
            .clone()
            .or_else(|| run.key.provider_key_id.clone()),
        name: None,
        hint: run.key.hint.clone(),
    }
}

fn skipped(reason: impl Into<String>) -> Res {
    Ok(ActionOutcome::Skipped(reason.into()))
}

impl Ctx {
    pub(super) async fn run_action<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        match action {
            Action::ResolveCredentials => self.resolve_credentials(run, step, sink).await,
            Action::Locate => self.locate(run, step, sink).await,
            Action::ReadStore => self.read_store(run, step, sink).await,
            Action::SnapshotUsage => self.snapshot_usage(run, step, sink).await,
            Action::Disable => self.disable(run, step, gate, sink).await,
            Action::Revoke => self.revoke(run, step, gate, sink).await,
            Action::ProveRevoked => self.prove_revoked(run, step, sink).await,
            Action::Create => self.create(run, step, gate, sink).await,
            Action::StoreWrite => self.store_write(run, step, gate, sink).await,
            Action::StoreReadBack => self.store_read_back(run, step, sink).await,
            Action::VerifyNew => self.verify_new(run, step, gate, sink).await,
            Action::Promote => self.promote(run, step, gate, sink).await,
            Action::FetchUsage => self.fetch_usage(run, step, sink).await,
            Action::EvaluateRules => self.evaluate_rules(run, step, sink),
            Action::WriteReport => self.write_report(run, step, sink),
            Action::UpdateInventory => self.update_inventory(run, step, gate, sink).await,
        }
    }

    /// On resume: secrets were never persisted and the world may have moved on, so resolve
    /// credentials and read provider and store state again before continuing.
    pub(super) async fn refresh<S: Sink>(
        &self,
        run: &mut KeyRun,
        sink: &mut S,
    ) -> Result<(), Failure> {
        self.log(sink, "evidence", Some(StepId::Open), &run.key.id, json!({ "action": "refresh", "text": "resuming: reading provider and store state again" }))?;
        self.resolve_credentials(run, StepId::Open, sink).await?;
        if run.caps.locate {
            self.locate(run, StepId::Open, sink).await?;
        }
        self.read_store(run, StepId::Open, sink).await?;
        self.reopen_lost_replacement(run, sink)?;
        Ok(())
    }

    /// A replacement created before the interruption whose value never reached the store is
    /// unusable: its value lived only in the dead process's memory. Offer the create again;
    /// it revokes that key first when the provider cannot replay a create (see `create`).
    fn reopen_lost_replacement<S: Sink>(
        &self,
        run: &mut KeyRun,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let lost = !self.params.dry_run
            && run.store.is_some()
            && run.facts.new_version.is_none()
            && run.bag.new_key.is_none()
            && run.session.status_of(StepId::Redeploy, Action::Create) == Some(Status::Done);
        if !lost || !run.session.reopen_from(StepId::Redeploy, Action::Create) {
            return Ok(());
        }
        // A pasted replacement is simply asked for again.
        run.facts.create_sent = run.caps.create;
        let key = run.key.id.clone();
        self.evidence(sink, StepId::Redeploy, &key, Action::Create, json!({
            "lost_replacement": run.facts.new_key_id,
            "text": "the replacement made before the interruption never reached the store and its value is gone: the create runs again",
        }))?;
        Ok(())
    }

    /// Record an entry about one action of one key.
    fn log_action<S: Sink>(
        &self,
        sink: &mut S,
        kind: &str,
        step: StepId,
        key: &str,
        action: Action,
        mut data: Value,
    ) -> Result<(), Failure> {
        if let Value::Object(m) = &mut data {
            m.insert("action".into(), json!(action));
        }
        self.log(sink, kind, Some(step), key, data)?;
        Ok(())
    }

    fn evidence<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        data: Value,
    ) -> Result<(), Failure> {
        self.log_action(sink, "evidence", step, key, action, data)
    }

    /// A best-effort read failed: record "evidence unavailable: reason" and go on. Evidence
    /// never blocks containment (DESIGN non-negotiable 7); drills list these as problems.
    /// Anything but a failed call (an abort, a record error) is passed on.
    fn unavailable<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        failure: Failure,
    ) -> Res {
        let Failure::Failed { error, status, .. } = failure else {
            return Err(failure);
        };
        let reason = self.http.redactor().scrub(&error);
        self.evidence(
            sink,
            step,
            key,
            action,
            json!({
                "unavailable": reason,
                "status": status,
                "text": format!("evidence unavailable: {reason}"),
            }),
        )?;
        skipped(format!("evidence unavailable: {reason}"))
    }

    /// Record the plan, then decide: `Ok(true)` send it, `Ok(false)` drill (recorded as not
    /// sent). Writes in a live incident wait for the operator's approval.
    async fn gate_plan<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        plan: &RequestPlan,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<bool, Failure> {
        let key = run.key.id.clone();
        self.log(
            sink,
            "plan",
            Some(step),
            &key,
            json!({ "action": action, "plan": plan, "rendered": plan.render() }),
        )?;
        if plan.access == Access::Write {
            if self.params.dry_run {
                self.log(sink, "not_sent", Some(step), &key, json!({ "action": action, "summary": plan.summary, "would_send": plan.render() }))?;
                return Ok(false);
            }
            let confirm = plan.destructive.then_some(key.as_str());
            let req = ApprovalRequest {
                incident: &self.id,
                key: &key,
                step,
                action,
                plan,
                confirm_text: confirm,
            };
            let decision = gate.approve(&req).await;
            match decision {
                Decision::Approve { via } => {
                    self.log(
                        sink,
                        "operator_input",
                        Some(step),
                        &key,
                        json!({ "action": action, "decision": "approve", "via": via }),
                    )?;
                }
                Decision::Decline { via } => {
                    self.log(
                        sink,
                        "operator_input",
                        Some(step),
                        &key,
                        json!({ "action": action, "decision": "decline", "via": via }),
                    )?;
                    return Err(Failure::Aborted(format!(
                        "operator declined: {}",
                        plan.summary
                    )));
                }
            }
        }
        match action {
            Action::Create => run.facts.create_sent = true,
            Action::Disable => run.facts.disable_sent = true,
            Action::Revoke => run.facts.revoke_sent = true,
            Action::StoreWrite => run.facts.store_write_sent = true,
            _ => {}
        }
        self.log(
            sink,
            "request_sent",
            Some(step),
            &key,
            json!({ "action": action, "method": plan.method, "url": plan.url }),
        )?;
        Ok(true)
    }

    fn response<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        ok: bool,
        data: Value,
    ) -> Result<(), Failure> {
        let mut data = data;
        if let Value::Object(m) = &mut data {
            m.insert("ok".into(), json!(ok));
        }
        self.log_action(sink, "response", step, key, action, data)
    }

    /// Plan, gate, send a provider operation. `Ok(None)`: drilled, not sent.
    async fn provider_call<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: Op,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<OpOutput>, Failure> {
        let plan = run
            .provider
            .plan(&op)
            .map_err(|e| provider_failure(step, &e))?;
        if !self.gate_plan(run, step, action, &plan, gate, sink).await? {
            return Ok(None);
        }
        let key = run.key.id.clone();
        let result = run.provider.execute(&op, &plan, &self.http, &run.bag).await;
        self.provider_response(sink, step, &key, action, result)
            .map(Some)
    }

    /// Record a provider's answer to a sent plan.
    fn provider_response<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        result: Result<OpOutput, ProviderError>,
    ) -> Result<OpOutput, Failure> {
        match result {
            Ok(out) => {
                let summary = describe_output(&out);
                self.response(sink, step, key, action, true, summary)?;
                Ok(out)
            }
            Err(e) => {
                self.response(
                    sink,
                    step,
                    key,
                    action,
                    false,
                    json!({ "status": e.status(), "error": e.to_string() }),
                )?;
                Err(provider_failure(step, &e))
            }
        }
    }

    /// Record a store's answer to a sent plan.
    fn store_response<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        result: Result<StoreOutput, StoreError>,
    ) -> Result<StoreOutput, Failure> {
        match result {
            Ok(out) => {
                let data = match &out {
                    StoreOutput::Value { version, .. } => {
                        json!({ "version": version, "value": "[read, held in memory]" })
                    }
                    StoreOutput::Missing => json!({ "missing": true }),
                    StoreOutput::Written { version } => json!({ "version": version }),
                    StoreOutput::Promoted { version, noop } => {
                        json!({ "promoted": version, "noop": noop })
                    }
                };
                self.response(sink, step, key, action, true, data)?;
                Ok(out)
            }
            Err(e) => {
                let status = match &e {
                    StoreError::Http(h) => h.status(),
                    _ => None,
                };
                self.response(
                    sink,
                    step,
                    key,
                    action,
                    false,
                    json!({ "status": status, "error": e.to_string() }),
                )?;
                Err(store_failure(step, &e))
            }
        }
    }

    /// Reads only: plan and send without a gate (drills send reads too).
    async fn provider_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: Op,
        sink: &mut S,
    ) -> Result<OpOutput, Failure> {
        // These calls go through an approve-everything gate: they must never plan a write.
        if run
            .provider
            .plan(&op)
            .is_ok_and(|p| p.access == Access::Write)
        {
            return Err(Failure::Failed {
                error: format!("{step}: a read was planned as a write"),
                status: None,
                retryable: false,
            });
        }
        let mut gate = super::gate::ApproveAll::default();
        match self
            .provider_call(run, step, action, op, &mut gate, sink)
            .await?
        {
            Some(out) => Ok(out),
            None => Err(Failure::Failed {
                error: format!("{step}: a read was planned as a write"),
                status: None,
                retryable: false,
            }),
        }
    }

    /// Read the store (the current version, or a given one). Reads need no approval, so this
    /// goes through an approve-everything gate and refuses a plan that would write.
    async fn store_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        version: Option<StoreVersion>,
        sink: &mut S,
    ) -> Result<Option<StoreOutput>, Failure> {
        let op = StoreOp::Read { version };
        let is_write = run.store.as_ref().is_some_and(|(store, loc)| {
            store
                .plan(&op, loc)
                .is_ok_and(|p| p.access == Access::Write)
        });
        if is_write {
            return Err(Failure::Failed {
                error: format!("{step}: a store read was planned as a write"),
                status: None,
                retryable: false,
            });
        }
        let mut reads = super::gate::ApproveAll::default();
        self.store_call(run, step, action, op, &mut reads, sink)
            .await
    }

    async fn store_call<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: StoreOp,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<StoreOutput>, Failure> {
        let Some((store, loc)) = run.store.clone() else {
            return Err(Failure::Failed {
                error: format!("{step}: key has no store"),
                status: None,
                retryable: false,
            });
        };
        self.store_credential(run, step).await?;
        let plan = store.plan(&op, &loc).map_err(|e| store_failure(step, &e))?;
        if !self.gate_plan(run, step, action, &plan, gate, sink).await? {
            return Ok(None);
        }
        let key = run.key.id.clone();
        let result = store.execute(&op, &loc, &plan, &self.http, &run.bag).await;
        self.store_response(sink, step, &key, action, result)
            .map(Some)
    }

    async fn manual<G: Gate, S: Sink>(
        &self,
        run: &KeyRun,
        step: StepId,
        action: Action,
        instructions: Vec<String>,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        if self.params.dry_run {
            self.log(
                sink,
                "not_sent",
                Some(step),
                &key,
                json!({ "action": action, "manual": true, "would_ask": instructions }),
            )?;
            return Ok(ActionOutcome::Done);
        }
        self.log(
            sink,
            "plan",
            Some(step),
            &key,
            json!({ "action": action, "manual": true, "instructions": instructions }),
        )?;
        let req = ManualRequest {
            incident: &self.id,
            key: &key,
            step,
            action,
            instructions: &instructions,
        };
        match gate.confirm_manual(&req).await {
            Decision::Approve { via } => {
                self.log(sink, "operator_input", Some(step), &key, json!({ "action": action, "manual": true, "decision": "confirmed", "via": via }))?;
                Ok(ActionOutcome::Done)
            }
            Decision::Decline { via } => {
                self.log(
                    sink,
                    "operator_input",
                    Some(step),
                    &key,
                    json!({ "action": action, "manual": true, "decision": "decline", "via": via }),
                )?;
                Err(Failure::Aborted(
                    "operator did not confirm the manual step".into(),
                ))
            }
        }
    }

    fn manual_intro(&self, run: &KeyRun) -> String {
        manual_reason(run.provider_def.kind)
            .map_or_else(String::new, |r| format!("Manual step: {r}."))
    }

    // ---- step 0: open -------------------------------------------------------------------

    async fn resolve_credentials<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        let mut resolved = Vec::new();
        if run.caps != crate::provider::Capabilities::NONE
            && let Some(cref) = run.provider_def.admin_credential.clone()
        {
            let secret = crate::credential::resolve(&cref, &self.setup.inventory, &self.http)
                .await
                .map_err(|e| Failure::Failed {
                    error: format!(
                        "{step}: admin credential for provider `{}`: {e}",
                        run.provider_def.id
                    ),
                    status: None,
                    retryable: true,
                })?;
            run.bag.admin = Some(secret);
            resolved.push(json!({ "for": format!("provider {}", run.provider_def.id), "reference": cref.to_string() }));
        }
        // The store is not needed for the revoke: a credential that cannot be resolved is
        // recorded and tried again by the first store call that needs it.
        match self.store_credential(run, step).await {
            Ok(Some(reference)) => resolved.push(json!({
                "for": format!("store {}", run.key.store.clone().unwrap_or_default()),
                "reference": reference,
            })),
            Ok(None) => {}
            Err(Failure::Failed { error, .. }) => {
                let error = self.http.redactor().scrub(&error);
                self.evidence(sink, step, &key, Action::ResolveCredentials, json!({
                    "unavailable": error,
                    "text": format!("store credential unavailable: {error}; the revoke goes on, store calls try again"),
                }))?;
            }
            Err(other) => return Err(other),
        }
        self.evidence(
            sink,
            step,
            &key,
            Action::ResolveCredentials,
            json!({ "resolved": resolved }),
        )?;
        Ok(ActionOutcome::Done)
    }

    /// Resolve the store's credential into the bag unless it is there or not needed.
    /// `Some(reference)` when this call resolved it.
    async fn store_credential(
        &self,
        run: &mut KeyRun,
        step: StepId,
    ) -> Result<Option<String>, Failure> {
        let Some(store_id) = run.key.store.clone() else {
            return Ok(None);
        };
        let needs = run
            .store
            .as_ref()
            .is_some_and(|(s, _)| s.needs_credential());
        let cref = self
            .setup
            .inventory
            .store(&store_id)
            .and_then(|s| s.credential.clone());
        let (true, Some(cref), None) = (needs, cref, run.bag.store_credential.as_ref()) else {
            return Ok(None);
        };
        let secret = crate::credential::resolve(&cref, &self.setup.inventory, &self.http)
            .await
            .map_err(|e| Failure::Failed {
                error: format!("{step}: credential for store `{store_id}`: {e}"),
                status: None,
                retryable: true,
            })?;
        run.bag.store_credential = Some(secret);
        Ok(Some(cref.to_string()))
    }

    async fn locate<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if !run.caps.locate {
            return skipped(format!(
                "{} cannot look keys up by API",
                run.provider_def.kind
            ));
        }
        let op = locate_op(run);
        let out = self
            .provider_read(run, step, Action::Locate, op, sink)
            .await?;
        self.apply_located(run, step, out, sink)
    }

    /// Locate the key and read the store at once: the revoke needs the first, the proof the
    /// second, and neither waits for the other (one round trip before the revoke, not two).
    /// Both plans are recorded before either is sent; both answers after. `None` for the
    /// store read when it did not run (it runs on its own turn then).
    pub(super) async fn locate_and_read_store<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> (Res, Option<Res>) {
        let key = run.key.id.clone();
        let op = locate_op(run);
        let store_op = StoreOp::Read { version: None };
        let credential = self.store_credential(run, step).await;
        let provider_plan = run.provider.plan(&op).ok();
        let store = run.store.clone().and_then(|(store, loc)| {
            let plan = store.plan(&store_op, &loc).ok()?;
            Some((store, loc, plan))
        });
        let (Ok(_), Some(plan), Some((store, loc, store_plan))) =
            (credential, provider_plan, store)
        else {
            // Something is off with one of the plans: the sequential actions say what.
            let located = self.locate(run, step, sink).await;
            return (located, None);
        };
        if plan.access == Access::Write || store_plan.access == Access::Write {
            let located = self.locate(run, step, sink).await;
            return (located, None);
        }
        let mut reads = super::gate::ApproveAll::default();
        for (action, p) in [(Action::Locate, &plan), (Action::ReadStore, &store_plan)] {
            match self.gate_plan(run, step, action, p, &mut reads, sink).await {
                Ok(true) => {}
                Ok(false) => return (self.locate(run, step, sink).await, None),
                Err(f) => return (Err(f), None),
            }
        }
        let (located, stored) = tokio::join!(
            run.provider.execute(&op, &plan, &self.http, &run.bag),
            store.execute(&store_op, &loc, &store_plan, &self.http, &run.bag),
        );
        let located = self.provider_response(sink, step, &key, Action::Locate, located);
        let stored = self.store_response(sink, step, &key, Action::ReadStore, stored);
        let located = match located {
            Ok(out) => self.apply_located(run, step, out, sink),
            Err(f) => Err(f),
        };
        let stored = match stored {
            Ok(out) => self.apply_store_read(run, step, Some(out), sink).await,
            Err(f) => self.unavailable(sink, step, &key, Action::ReadStore, f),
        };
        (located, Some(stored))
    }

    fn apply_located<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        out: OpOutput,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        match out {
            OpOutput::Located(Some(found)) => {
                run.facts.provider_key_id = Some(found.id.clone());
                run.facts.provider_key_hint = found.hint.clone();
                run.facts.old_state = Some(found.state);
                self.evidence(sink, step, &key, Action::Locate, json!({ "found": found }))?;
                Ok(ActionOutcome::Done)
            }
            OpOutput::Located(None)
                if run.facts.revoke_sent || run.facts.old_state == Some(KeyState::Revoked) =>
            {
                run.facts.old_state = Some(KeyState::Revoked);
                self.evidence(sink, step, &key, Action::Locate, json!({ "found": null, "text": "the key is gone at the provider: it was revoked" }))?;
                Ok(ActionOutcome::Done)
            }
            OpOutput::Located(None) => Err(Failure::Failed {
                error: format!(
                    "{step}: key not found at provider `{}` (provider_key_id {:?}, hint {:?}): check the inventory, or skip if it was already deleted",
                    run.provider_def.id, run.key.provider_key_id, run.key.hint
                ),
                status: Some(404),
                retryable: false,
            }),
            // Several keys look like the leaked one: picking any could revoke the wrong key.
            OpOutput::Ambiguous(candidates) => {
                let listed: Vec<String> = candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "{} (name {}, created {}, last used {})",
                            c.id,
                            c.name.as_deref().unwrap_or("-"),
                            c.created_at.as_deref().unwrap_or("unknown"),
                            c.last_used_at.as_deref().unwrap_or("unknown")
                        )
                    })
                    .collect();
                let text = format!(
                    "{} keys at provider `{}` match hint {}: {}. Nothing was changed: set provider_key_id of key `{key}` in the inventory to the leaked key's id, then resume",
                    candidates.len(),
                    run.provider_def.id,
                    run.key.hint.as_deref().unwrap_or("-"),
                    listed.join("; ")
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::Locate,
                    json!({ "ambiguous": candidates, "text": text }),
                )?;
                Err(Failure::Failed {
                    error: format!("{step}: {text}"),
                    status: None,
                    retryable: false,
                })
            }
            _ => Err(Failure::Failed {
                error: format!("{step}: unexpected answer to locate"),
                status: None,
                retryable: false,
            }),
        }
    }

    async fn read_store<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if run.store.is_none() {
            return skipped("the key has no store");
        }
        let key = run.key.id.clone();
        let current = match self
            .store_read(run, step, Action::ReadStore, None, sink)
            .await
        {
            Ok(current) => current,
            // The proof and the audit's fingerprint need the old value, the revoke does not.
            Err(f) => return self.unavailable(sink, step, &key, Action::ReadStore, f),
        };
        self.apply_store_read(run, step, current, sink).await
    }

    /// Take in the store's current value: the leaked key, or (on resume) keyfire's own
    /// replacement with the leaked key read back by its version.
    async fn apply_store_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        current: Option<StoreOutput>,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        match current {
            Some(StoreOutput::Value { value, version }) => {
                let old_version = run
                    .facts
                    .old_version
                    .get_or_insert_with(|| version.clone())
                    .clone();
                if version == old_version {
                    run.bag.old_key = Some(value);
                } else {
                    // The store moved on since the incident opened. It is keyfire's replacement
                    // only if keyfire sent a write and the value is the one it created (same
                    // hint); someone else's write is never adopted.
                    let ours = run
                        .facts
                        .new_key_hint
                        .as_ref()
                        .is_none_or(|h| *h == value.hint());
                    if run.facts.new_version.is_none() && run.facts.store_write_sent && ours {
                        run.facts.new_version = Some(version.clone());
                    }
                    if run.facts.new_version.as_ref() == Some(&version) {
                        run.facts.promoted = true;
                        run.bag.new_key = Some(value);
                    }
                    // Without the old value the proof is inconclusive; nothing else stops.
                    let old = self
                        .store_read(
                            run,
                            step,
                            Action::ReadStore,
                            Some(old_version.clone()),
                            sink,
                        )
                        .await;
                    match old {
                        Ok(Some(StoreOutput::Value { value, .. })) => run.bag.old_key = Some(value),
                        Ok(_) => {}
                        Err(Failure::Failed { error, .. }) => {
                            let error = self.http.redactor().scrub(&error);
                            self.evidence(sink, step, &key, Action::ReadStore, json!({
                                "unavailable": error,
                                "text": format!("evidence unavailable: the leaked version {old_version} could not be read back: {error}"),
                            }))?;
                        }
                        Err(other) => return Err(other),
                    }
                }
                let text = format!(
                    "store holds version {version}; the leaked key is version {old_version}"
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ReadStore,
                    json!({ "current_version": version, "old_version": old_version, "text": text }),
                )?;
                self.recover_pending(run, step, sink).await?;
            }
            _ => {
                run.facts.old_version.get_or_insert(StoreVersion::Number(0));
                self.evidence(sink, step, &key, Action::ReadStore, json!({ "current_version": null, "text": "nothing stored at the secret path yet" }))?;
            }
        }
        Ok(ActionOutcome::Done)
    }

    async fn usage<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        sink: &mut S,
    ) -> Result<Option<UsageReport>, Failure> {
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Ok(None);
        };
        match self
            .provider_read(run, step, action, Op::Usage { id, start, end }, sink)
            .await?
        {
            OpOutput::Usage(r) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    async fn snapshot_usage<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if !run.caps.usage {
            return skipped(format!(
                "{} has no usage API in keyfire",
                run.provider_def.kind
            ));
        }
        if run.facts.provider_key_id.is_none() {
            return skipped("the key was not located");
        }
        let end = self.now();
        let key = run.key.id.clone();
        let report = match self
            .usage(
                run,
                step,
                Action::SnapshotUsage,
                end - Duration::days(7),
                end,
                sink,
            )
            .await
        {
            Ok(Some(report)) => report,
            Ok(None) => return skipped("no usage returned"),
            Err(f) => return self.unavailable(sink, step, &key, Action::SnapshotUsage, f),
        };
        let text = format!(
            "last 7 days before any change: {} requests, ${:.2}",
            report.requests(),
            report.cost_usd()
        );
        self.evidence(
            sink,
            step,
            &key,
            Action::SnapshotUsage,
            json!({
                "text": text,
                "window_days": 7,
                "requests": report.requests(),
                "tokens": report.tokens(),
                "cost_usd": report.cost_usd(),
                "pages": report.pages,
                "events": report.events.len(),
                "notes": report.notes,
            }),
        )?;
        Ok(ActionOutcome::Done)
    }

    // ---- step 1: revoke -----------------------------------------------------------------

    async fn disable<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if !run.caps.disable {
            return skipped(format!(
                "{} has no disable; revoke follows",
                run.provider_def.kind
            ));
        }
        match run.facts.old_state {
            Some(KeyState::Disabled) => return skipped("already disabled at the provider"),
            Some(KeyState::Revoked) => return skipped("already revoked at the provider"),
            _ => {}
        }
        let Some(id) = run.facts.provider_key_id.clone() else {
            return skipped("the key was not located");
        };
        super::engine::injected_failure("disable")?;
        if let Some(OpOutput::Disabled) = self
            .provider_call(run, step, Action::Disable, Op::Disable { id }, gate, sink)
            .await?
        {
            run.facts.old_state = Some(KeyState::Disabled);
        }
        Ok(ActionOutcome::Done)
    }

    async fn revoke<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if run.facts.old_state == Some(KeyState::Revoked) {
            if run.facts.revoked_at.is_none() {
                run.facts.revoked_at = Some(self.now());
            }
            return skipped("already revoked at the provider");
        }
        if !run.caps.revoke {
            let id = run
                .key
                .provider_key_id
                .clone()
                .or(run.key.hint.clone())
                .unwrap_or_else(|| run.key.id.clone());
            let mut text = vec![
                self.manual_intro(run),
                format!(
                    "Revoke key {id} at provider `{}` ({}) in its console.",
                    run.provider_def.id, run.provider_def.kind
                ),
                "Confirm here once the provider shows the key as revoked or deleted.".into(),
            ];
            if let Some(note) = self
                .setup
                .runbook
                .note(run.provider_def.kind, StepId::Revoke)
            {
                text.push(note.to_string());
            }
            let out = self
                .manual(run, step, Action::Revoke, text, gate, sink)
                .await?;
            if !self.params.dry_run {
                run.facts.old_state = Some(KeyState::Revoked);
                run.facts.revoked_at = Some(self.now());
            }
            return Ok(out);
        }
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Err(Failure::Failed {
                error: format!("{step}: the key was not located at the provider"),
                status: None,
                retryable: true,
            });
        };
        if self.params.purpose == super::engine::Purpose::Rotation
            && !self.params.dry_run
            && run.store.is_some()
            && run.facts.new_version.is_none()
        {
            // A rotation revokes only once the store serves the replacement: otherwise the
            // agents still read the old key (a restore was begun, or nothing was stored).
            return Err(Failure::Failed {
                error: format!(
                    "{step}: the store does not serve a replacement; revoking the old key would break its agents"
                ),
                status: None,
                retryable: false,
            });
        }
        if let Some(OpOutput::Revoked { already }) = self
            .provider_call(run, step, Action::Revoke, Op::Revoke { id }, gate, sink)
            .await?
        {
            run.facts.old_state = Some(KeyState::Revoked);
            run.facts.revoked_at = Some(self.now());
            if already {
                let key = run.key.id.clone();
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::Revoke,
                    json!({ "text": "the provider no longer knows the key: already revoked" }),
                )?;
            }
        }
        Ok(ActionOutcome::Done)
    }

    /// Call the provider with the old value and expect its documented invalid-credential
    /// answer (live), or acceptance (drill: proves the check itself works). Any other answer,
    /// or an old value that is not the located key, leaves the revocation "inconclusive": the
    /// step finishes, and the evidence, summary, report and exit code say it is not proven.
    async fn prove_revoked<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if !run.caps.verify {
            return skipped(format!(
                "not provable: {} has no verify call in keyfire",
                run.provider_def.kind
            ));
        }
        let Some(old) = run.bag.old_key.as_ref() else {
            return skipped(
                "inconclusive: old value unavailable (the store could not be read), so the revocation is not proven",
            );
        };
        let key = run.key.id.clone();
        let identity = crate::provider::identity(
            run.provider_def.kind,
            old,
            run.facts.provider_key_id.as_deref(),
            run.facts.provider_key_hint.as_deref(),
            run.key.fingerprint.as_deref(),
        );
        if self.params.dry_run {
            let out = self
                .provider_read(
                    run,
                    step,
                    Action::ProveRevoked,
                    Op::Verify { which: Which::Old },
                    sink,
                )
                .await?;
            let accepted = matches!(&out, OpOutput::Verified(p) if p.alive());
            self.evidence(sink, step, &key, Action::ProveRevoked, json!({
                "drill": true,
                "old_key_authenticates": accepted,
                "identity": identity,
                "text": if accepted { "drill: the old key still authenticates (revoke was not sent); the proof call works" } else { "drill: the provider already rejects the old key" },
            }))?;
            return Ok(ActionOutcome::Done);
        }
        let inconclusive = |reason: String, probe: Option<&Probe>| {
            json!({
                "proof": "inconclusive",
                "reason": reason,
                "answer": probe,
                "status": probe.and_then(Probe::status),
                "identity": identity,
                "text": format!("revocation NOT proven: {reason}"),
            })
        };
        if let Identity::Differs { by } | Identity::Unknown { why: by } = &identity {
            let reason = match &identity {
                Identity::Differs { .. } => {
                    format!("the old value read from the store is not the located key ({by})")
                }
                _ => format!("cannot tell whether the stored old value is the located key: {by}"),
            };
            self.evidence(
                sink,
                step,
                &key,
                Action::ProveRevoked,
                inconclusive(reason, None),
            )?;
            return Ok(ActionOutcome::Done);
        }
        let waits = run.provider.proof_waits();
        let mut last = None;
        for attempt in 0..=waits.len() {
            let probe = match self
                .provider_read(
                    run,
                    step,
                    Action::ProveRevoked,
                    Op::Verify { which: Which::Old },
                    sink,
                )
                .await?
            {
                OpOutput::Verified(p) => p,
                _ => {
                    return Err(Failure::Failed {
                        error: format!("{step}: unexpected answer to verify"),
                        status: None,
                        retryable: false,
                    });
                }
            };
            if let Probe::Rejected { status, signal } = &probe {
                run.facts.revoked_at = Some(self.now());
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ProveRevoked,
                    json!({
                        "proof": "proven",
                        "old_key_rejected": true,
                        "status": status,
                        "signal": signal,
                        "identity": identity,
                        "text": match status {
                            Some(st) => format!("the provider rejects the old key with HTTP {st} ({signal}, its documented invalid-credential answer)"),
                            None => format!("the provider rejects the old key ({signal}, its documented invalid-credential answer)"),
                        },
                    }),
                )?;
                return Ok(ActionOutcome::Done);
            }
            last = Some(probe);
            if let Some(wait) = waits.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        let tries = waits.len() + 1;
        match last {
            // A provider that confirmed the revoke and still accepts the key, where changes
            // are immediate, did not revoke it: the step fails. Where changes propagate (IAM),
            // a key still accepted after the whole wait is not proof either way.
            Some(Probe::Accepted) if !run.provider.eventually_consistent() => {
                Err(Failure::Failed {
                    error: format!(
                        "{step}: the provider still accepts the old key after revocation ({tries} tries)"
                    ),
                    status: None,
                    retryable: true,
                })
            }
            None => Err(Failure::Failed {
                error: format!("{step}: the provider never answered the proof"),
                status: None,
                retryable: true,
            }),
            Some(probe) => {
                let reason = format!(
                    "after {tries} tries the last answer was {}",
                    probe.describe()
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ProveRevoked,
                    inconclusive(reason, Some(&probe)),
                )?;
                Ok(ActionOutcome::Done)
            }
        }
    }

    // ---- step 2: redeploy ---------------------------------------------------------------

    fn replacement_name(&self, run: &KeyRun) -> String {
        let base = format!("keyfire-{}-{}", self.id, run.key.id);
        if run.facts.create_attempt > 1 {
            format!("{base}-{}", run.facts.create_attempt)
        } else {
            base
        }
    }

    async fn create<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        if run.store.is_none() {
            let text = vec![
                format!(
                    "keyfire has no store for key `{key}`, so it cannot deliver a replacement."
                ),
                format!(
                    "Create a replacement at provider `{}` and deploy it to the agents ({}) yourself, then confirm.",
                    run.provider_def.id,
                    run.key.agents.join(", ")
                ),
            ];
            return self
                .manual(run, step, Action::Create, text, gate, sink)
                .await;
        }
        if let Some(v) = &run.facts.new_version {
            return skipped(format!("the replacement is already stored (version {v})"));
        }
        if run.bag.new_key.is_some() {
            return skipped("the replacement already exists in memory");
        }
        if !run.caps.create {
            let mut text = vec![self.manual_intro(run)];
            text.push(format!(
                "Create a replacement key at provider `{}` ({}) in its console.",
                run.provider_def.id, run.provider_def.kind
            ));
            text.push("Paste it into the masked prompt: keyfire stores and verifies it and never shows it.".into());
            if let Some(note) = self
                .setup
                .runbook
                .note(run.provider_def.kind, StepId::Redeploy)
            {
                text.push(note.to_string());
            }
            if self.params.dry_run {
                self.log(
                    sink,
                    "not_sent",
                    Some(step),
                    &key,
                    json!({ "action": Action::Create, "manual": true, "would_ask": text }),
                )?;
                return Ok(ActionOutcome::Done);
            }
            self.log(
                sink,
                "plan",
                Some(step),
                &key,
                json!({ "action": Action::Create, "manual": true, "instructions": text }),
            )?;
            let req = PasteRequest {
                incident: &self.id,
                key: &key,
                instructions: &text,
            };
            let Some(secret) = gate.paste_secret(&req).await.filter(|s| !s.is_empty()) else {
                return Err(Failure::Aborted("no replacement key was pasted".into()));
            };
            if run
                .bag
                .old_key
                .as_ref()
                .is_some_and(|old| old.expose() == secret.expose())
            {
                return Err(Failure::Failed {
                    error: format!("{step}: the pasted key is the leaked key"),
                    status: None,
                    retryable: true,
                });
            }
            self.http.redactor().learn(&secret);
            run.facts.new_key_hint = Some(secret.hint());
            run.bag.new_key = Some(secret);
            self.log(
                sink,
                "operator_input",
                Some(step),
                &key,
                json!({ "action": Action::Create, "pasted": true, "hint": run.facts.new_key_hint }),
            )?;
            return Ok(ActionOutcome::Done);
        }
        // A replacement created before a crash (or by a create whose answer was lost) but
        // whose value never reached the store.
        if !self.params.dry_run
            && !run.caps.create_idempotent
            && (run.facts.create_sent || run.facts.create_intents.iter().any(|i| !i.settled))
        {
            self.revoke_orphan(run, step, gate, sink).await?;
            if let Some(v) = &run.facts.new_version {
                return skipped(format!(
                    "the store already serves the replacement (version {v})"
                ));
            }
        }
        if run.facts.create_attempt == 0 {
            run.facts.create_attempt = 1;
        }
        let attempt = run.facts.create_attempt;
        let name = self.replacement_name(run);
        let op = Op::Create {
            name: name.clone(),
            idempotency_key: format!("{}:{}:create:{attempt}", self.id, key),
        };
        // The intent goes into the record before the request leaves: if its answer is lost,
        // this is how the replacement is found again. A replay of the same attempt keeps the
        // first send time (the provider may have made the key then).
        if !self.params.dry_run && run.facts.intent_mut(attempt).is_none() {
            let intent = super::facts::CreateIntent {
                attempt,
                name,
                sent_at: Some(Utc::now()),
                ..Default::default()
            };
            self.record_intent(run, step, sink, intent)?;
        }
        let created = self
            .provider_call(run, step, Action::Create, op, gate, sink)
            .await;
        if let Err(Failure::Failed { .. }) = &created
            && let Some(mut intent) = run.facts.intent_mut(attempt).cloned()
        {
            intent.answered_at = Some(Utc::now());
            self.record_intent(run, step, sink, intent)?;
        }
        if let Some(OpOutput::Created { id, value }) = created? {
            self.http.redactor().learn(&value);
            run.facts.new_key_id = Some(id.clone());
            run.facts.new_key_hint = Some(value.hint());
            run.bag.new_key = Some(value);
            if let Some(intent) = run.facts.intent_mut(attempt) {
                intent.key_id = Some(id.clone());
            }
            self.evidence(
                sink,
                step,
                &key,
                Action::Create,
                json!({ "new_key_id": id, "hint": run.facts.new_key_hint, "create_intent": run.facts.intent_mut(attempt).cloned() }),
            )?;
        }
        Ok(ActionOutcome::Done)
    }

    /// Record what keyfire knows about one create attempt (replayed on resume).
    fn record_intent<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
        intent: super::facts::CreateIntent,
    ) -> Result<(), Failure> {
        let key = run.key.id.clone();
        run.facts.upsert_intent(intent.clone());
        self.evidence(
            sink,
            step,
            &key,
            Action::Create,
            json!({ "create_intent": intent }),
        )?;
        Ok(())
    }

    /// Key ids the record or the inventory gives to someone other than this key: the
    /// replacements other keys of this incident recorded, and every inventory key's id. An
    /// orphan search never takes one of these.
    fn ids_of_others(&self, run: &KeyRun) -> Vec<String> {
        let mut ids: Vec<String> = self
            .setup
            .inventory
            .keys
            .iter()
            .filter_map(|k| k.provider_key_id.clone())
            .collect();
        if let Ok(entries) = crate::record::read_entries(&self.record.path()) {
            for e in entries.iter().filter(|e| {
                e.kind == "evidence" && e.data["key"].as_str() != Some(run.key.id.as_str())
            }) {
                let recorded = e.data["new_key_id"]
                    .as_str()
                    .or_else(|| e.data["create_intent"]["key_id"].as_str());
                if let Some(id) = recorded {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Revoke every replacement whose value was lost, so that no unknown key stays live: each
    /// create attempt the record knows of (a crash during a second attempt leaves two), found
    /// by its recorded id, else by the record's intent (its name, the time it was sent, and
    /// not a key the record gives to someone else). The store is read again first: the
    /// replacement it serves as current is never revoked (an ambiguous write that landed).
    pub(super) async fn revoke_orphan<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let key = run.key.id.clone();
        if run.store.is_some() && run.facts.store_write_sent && run.facts.new_version.is_none() {
            // Unknown is not "unstored": if the store cannot be read, nothing is revoked.
            let current = self
                .store_read(run, step, Action::ReadStore, None, sink)
                .await?;
            self.apply_store_read(run, step, current, sink).await?;
        }
        let served = run
            .facts
            .new_version
            .is_some()
            .then(|| run.facts.new_key_id.clone())
            .flatten();
        if run.facts.new_version.is_some() {
            let attempt = run.facts.create_attempt;
            if let Some(mut intent) = run.facts.intent_mut(attempt).cloned() {
                intent.settled = true;
                self.record_intent(run, step, sink, intent)?;
            }
            self.evidence(
                sink,
                step,
                &key,
                Action::Create,
                json!({ "text": "the store serves the replacement: it is kept, not revoked" }),
            )?;
        }
        let mut pending: Vec<super::facts::CreateIntent> = run
            .facts
            .create_intents
            .iter()
            .filter(|i| !i.settled)
            .cloned()
            .collect();
        if run.facts.create_intents.is_empty()
            && run.facts.create_sent
            && run.facts.new_version.is_none()
        {
            // A record written before intents were recorded: search by the name and id.
            pending.push(super::facts::CreateIntent {
                attempt: run.facts.create_attempt.max(1),
                name: self.replacement_name(run),
                key_id: run.facts.new_key_id.clone(),
                ..Default::default()
            });
        }
        let exclude = if pending.is_empty() {
            Vec::new()
        } else {
            self.ids_of_others(run)
        };
        for intent in pending {
            let orphan = self.find_orphan(run, step, &intent, &exclude, sink).await?;
            // Never take the leaked key (while it still serves the agents) or the replacement
            // the store serves for an orphan.
            let leaked_live = |id: &String| {
                run.facts.provider_key_id.as_ref() == Some(id)
                    && run.facts.old_state != Some(KeyState::Revoked)
            };
            if let Some(id) = orphan.filter(|id| !leaked_live(id) && served.as_ref() != Some(id)) {
                self.evidence(sink, step, &key, Action::Create, json!({ "orphan": id, "attempt": intent.attempt, "text": "a replacement whose value was lost (its create answer, or the process, did not survive) is revoked" }))?;
                self.provider_call(run, step, Action::Create, Op::Revoke { id }, gate, sink)
                    .await?;
            }
            if run.facts.intent_mut(intent.attempt).is_some() {
                let mut settled = intent.clone();
                settled.settled = true;
                self.record_intent(run, step, sink, settled)?;
            }
        }
        if run.facts.new_version.is_none() {
            run.facts.create_attempt = run.facts.create_attempt.max(1) + 1;
            run.facts.new_key_id = None;
            run.facts.create_sent = false;
        }
        Ok(())
    }

    /// The provider's id of one create attempt's replacement, if it exists.
    async fn find_orphan<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        intent: &super::facts::CreateIntent,
        exclude: &[String],
        sink: &mut S,
    ) -> Result<Option<String>, Failure> {
        // Read the provider's state rather than trusting the record: the key may be gone
        // already, and revoking it may need what only a lookup tells (its owner, at OpenAI).
        if !run.caps.locate {
            return Ok(intent.key_id.clone());
        }
        let op = match intent.sent_at {
            Some(sent_at) => Op::FindReplacement(crate::provider::ReplacementQuery {
                name: intent.name.clone(),
                id: intent.key_id.clone(),
                sent_at,
                answered_at: intent.answered_at,
                exclude: exclude.to_vec(),
            }),
            None => Op::Locate {
                id: intent.key_id.clone(),
                name: Some(intent.name.clone()),
                hint: None,
            },
        };
        Ok(
            match self
                .provider_read(run, step, Action::Create, op, sink)
                .await?
            {
                OpOutput::Located(Some(k)) if k.state != KeyState::Revoked => Some(k.id),
                _ => None,
            },
        )
    }

    async fn store_write<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if run.store.is_none() {
            return skipped("the key has no store (the operator deployed the replacement)");
        }
        if let Some(v) = &run.facts.new_version {
            return skipped(format!("already stored as version {v}"));
        }
        if run.bag.new_key.is_none() && !self.params.dry_run {
            return Err(Failure::Failed {
                error: format!("{step}: no replacement in memory to store"),
                status: None,
                retryable: true,
            });
        }
        if run.facts.old_version.is_none() {
            // The read at open failed (it never holds up the revoke); the write's
            // check-and-set needs the version the store holds now.
            let current = self
                .store_read(run, step, Action::ReadStore, None, sink)
                .await?;
            self.apply_store_read(run, step, current, sink).await?;
        }
        let cas = run.facts.old_version.clone();
        let key = run.key.id.clone();
        let pending = self.stages_replacement(run);
        let token = self.store_token(run);
        if !self.params.dry_run {
            super::engine::failpoint("store_write");
        }
        if let Some(StoreOutput::Written { version }) = self
            .store_call(
                run,
                step,
                Action::StoreWrite,
                StoreOp::Write {
                    cas: cas.clone(),
                    pending,
                    token,
                    value: SecretRef::NewKey,
                },
                gate,
                sink,
            )
            .await?
        {
            run.facts.new_version = Some(version.clone());
            run.facts.promoted = !pending;
            self.evidence(
                sink,
                step,
                &key,
                Action::StoreWrite,
                json!({ "version": version, "previous_version": cas, "pending": pending }),
            )?;
        }
        Ok(ActionOutcome::Done)
    }

    /// After a rotation failed with its replacement stored and the old key still live: make
    /// the previous version the one agents read again, so the replacement can be revoked and
    /// exactly the old key stays in use. A store with stages moves its current label back
    /// (nothing is written when the replacement was never promoted); a store without stages
    /// gets the previous value written over the replacement (check-and-set on the
    /// replacement's version, so a write by someone else since is never overwritten).
    /// `Ok(None)`: restored; `Ok(Some(why))`: this store cannot restore, and why.
    pub(super) async fn restore_previous<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<String>, Failure> {
        let Some((store, _)) = run.store.clone() else {
            return Ok(Some("the key has no store".into()));
        };
        let Some(new) = run.facts.new_version.clone() else {
            return Ok(None);
        };
        let Some(old) = run
            .facts
            .old_version
            .clone()
            .filter(|v| v.number() != Some(0))
        else {
            return Ok(Some(
                "the store held nothing before the replacement, so there is no version to go back to"
                    .into(),
            ));
        };
        let key = run.key.id.clone();
        // Recorded before anything is sent: a resume after a crash here must treat the
        // replacement as no longer served (see `replay`).
        self.evidence(
            sink,
            step,
            &key,
            Action::StoreWrite,
            json!({
                "restore_intent": true,
                "text": format!("putting version {old} back as the one agents read"),
            }),
        )?;
        if store.has_stages() {
            if run.facts.promoted {
                let promoted = self
                    .store_call(
                        run,
                        step,
                        Action::StoreWrite,
                        StoreOp::Promote {
                            version: old.clone(),
                            from: Some(new.clone()),
                        },
                        gate,
                        sink,
                    )
                    .await?;
                if !matches!(promoted, Some(StoreOutput::Promoted { .. })) {
                    return Ok(Some("the store did not confirm the promotion".into()));
                }
            }
            Self::forget_replacement(run);
            self.evidence(sink, step, &key, Action::StoreWrite, json!({
                "restored": true,
                "version": old,
                "previous_version": new,
                "text": format!("version {old} (the key in use before the rotation) is again the one agents read; the replacement, version {new}, is not"),
            }))?;
            return Ok(None);
        }
        if run.bag.old_key.is_none() {
            match self
                .store_read(run, step, Action::ReadStore, Some(old.clone()), sink)
                .await?
            {
                Some(StoreOutput::Value { value, .. }) => run.bag.old_key = Some(value),
                _ => {
                    return Ok(Some(format!(
                        "{} keeps no copy of version {old} to restore",
                        store.kind()
                    )));
                }
            }
        }
        let token = format!(
            "{}:{}:restore:{}",
            self.id,
            run.key.id,
            run.facts.create_attempt.max(1)
        );
        let written = self
            .store_call(
                run,
                step,
                Action::StoreWrite,
                StoreOp::Write {
                    cas: Some(new.clone()),
                    pending: false,
                    token,
                    value: SecretRef::OldKey,
                },
                gate,
                sink,
            )
            .await?;
        let Some(StoreOutput::Written { version }) = written else {
            return Ok(Some("the store did not confirm the write".into()));
        };
        run.facts.old_version = Some(version.clone());
        Self::forget_replacement(run);
        self.evidence(sink, step, &key, Action::StoreWrite, json!({
            "restored": true,
            "version": version,
            "previous_version": new,
            "text": format!("the key in use before the rotation (version {old}) is written back as version {version}; agents read it again, not the replacement (version {new})"),
        }))?;
        Ok(None)
    }

    /// After a restore the replacement is stored but not served: it is an orphan to revoke,
    /// never a write to adopt (which is what a sent write with no known version means to
    /// `recover_pending` and to the store read before cleanup).
    pub(super) fn forget_replacement(run: &mut KeyRun) {
        run.facts.new_version = None;
        run.facts.promoted = false;
        run.facts.store_write_sent = false;
    }

    /// Whether the replacement waits in a pending stage for `promote`: only when the store
    /// has stages and the runbook promotes.
    fn stages_replacement(&self, run: &KeyRun) -> bool {
        let store_has_stages = run.store.as_ref().is_some_and(|(s, _)| s.has_stages());
        let runbook_promotes = self
            .setup
            .runbook
            .step(StepId::Redeploy)
            .is_some_and(|s| s.actions.contains(&Action::Promote));
        store_has_stages && runbook_promotes
    }

    /// The name of this replacement's store write: the same on every retry and resume of the
    /// same create attempt, different for a new attempt (a new value).
    fn store_token(&self, run: &KeyRun) -> String {
        format!(
            "{}:{}:store:{}",
            self.id,
            run.key.id,
            run.facts.create_attempt.max(1)
        )
    }

    /// After an interruption during a staged write: the store may hold the replacement as a
    /// pending version that the record never saw confirmed. Find it by its deterministic
    /// name and take the value back into memory, so no second replacement is made.
    async fn recover_pending<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Result<(), Failure> {
        if run.facts.new_version.is_some() || !run.facts.store_write_sent {
            return Ok(());
        }
        let token = self.store_token(run);
        let Some(version) = run
            .store
            .as_ref()
            .and_then(|(s, _)| s.version_for_token(&token))
        else {
            return Ok(());
        };
        let found = self
            .store_read(run, step, Action::ReadStore, Some(version.clone()), sink)
            .await?;
        if let Some(StoreOutput::Value { value, .. }) = found {
            run.facts.new_version = Some(version.clone());
            run.bag.new_key = Some(value);
            let key = run.key.id.clone();
            self.evidence(sink, step, &key, Action::ReadStore, json!({ "pending_version": version, "text": "the replacement written before the interruption is in the store: it is used, not recreated" }))?;
        }
        Ok(())
    }

    async fn promote<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let Some((store, _)) = run.store.clone() else {
            return skipped("the key has no store");
        };
        let key = run.key.id.clone();
        if !self.stages_replacement(run) {
            if let Some(v) = run.facts.new_version.clone() {
                run.facts.promoted = true;
                self.evidence(sink, step, &key, Action::Promote, json!({ "version": v, "noop": true, "text": format!("{} has no stages: version {v} became current when it was written", store.kind()) }))?;
                return Ok(ActionOutcome::Done);
            }
            return skipped(format!(
                "{} has no stages: nothing to promote",
                store.kind()
            ));
        }
        if run.facts.promoted {
            return skipped("the replacement is already current");
        }
        let version = match (&run.facts.new_version, self.params.dry_run) {
            (Some(v), _) => v.clone(),
            // A drill shows the promotion it would send, naming the version the write
            // would have created.
            (None, true) => match store.version_for_token(&self.store_token(run)) {
                Some(v) => v,
                None => return skipped("drill: nothing was written to promote"),
            },
            (None, false) => return skipped("nothing was written by keyfire"),
        };
        if !self.params.dry_run {
            super::engine::failpoint("promote");
        }
        let from = run
            .facts
            .old_version
            .clone()
            .filter(|v| v.number() != Some(0));
        if let Some(StoreOutput::Promoted { version, .. }) = self
            .store_call(
                run,
                step,
                Action::Promote,
                StoreOp::Promote {
                    version: version.clone(),
                    from: from.clone(),
                },
                gate,
                sink,
            )
            .await?
        {
            run.facts.promoted = true;
            self.evidence(sink, step, &key, Action::Promote, json!({ "version": version, "previous_version": from, "noop": false, "text": format!("version {version} is now the one agents read") }))?;
        }
        Ok(ActionOutcome::Done)
    }

    async fn store_read_back<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if self.params.dry_run {
            return skipped("drill: nothing was written to read back");
        }
        let Some(version) = run.facts.new_version.clone() else {
            return skipped("nothing was written by keyfire");
        };
        let key = run.key.id.clone();
        match self
            .store_read(
                run,
                step,
                Action::StoreReadBack,
                Some(version.clone()),
                sink,
            )
            .await?
        {
            Some(StoreOutput::Value { value, .. }) => {
                let matches = match &run.bag.new_key {
                    Some(new) => new.expose() == value.expose(),
                    None => {
                        run.bag.new_key = Some(value);
                        true
                    }
                };
                if !matches {
                    return Err(Failure::Failed {
                        error: format!(
                            "{step}: store version {version} does not hold the replacement"
                        ),
                        status: None,
                        retryable: false,
                    });
                }
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::StoreReadBack,
                    json!({ "version": version, "matches": true }),
                )?;
                Ok(ActionOutcome::Done)
            }
            _ => Err(Failure::Failed {
                error: format!("{step}: store version {version} cannot be read back"),
                status: None,
                retryable: true,
            }),
        }
    }

    async fn verify_new<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if self.params.dry_run {
            return skipped("drill: no replacement was created");
        }
        let key = run.key.id.clone();
        // After a resume the replacement may sit in the store (a pending version agents do
        // not read yet) but not in memory: read it back rather than fall back to asking.
        if run.caps.verify
            && run.bag.new_key.is_none()
            && run.store.is_some()
            && let Some(version) = run.facts.new_version.clone()
            && let Some(StoreOutput::Value { value, .. }) = self
                .store_read(run, step, Action::VerifyNew, Some(version), sink)
                .await?
        {
            run.bag.new_key = Some(value);
        }
        if !run.caps.verify || run.bag.new_key.is_none() {
            let text = vec![format!(
                "Confirm that the agents ({}) work with the replacement.",
                run.key.agents.join(", ")
            )];
            let out = self
                .manual(run, step, Action::VerifyNew, text, gate, sink)
                .await?;
            run.facts.restored_at = Some(self.now());
            return Ok(out);
        }
        // A new key can take a moment to work everywhere (IAM is eventually consistent).
        let waits = run.provider.proof_waits();
        let mut last = None;
        for attempt in 0..=waits.len() {
            match self
                .provider_read(
                    run,
                    step,
                    Action::VerifyNew,
                    Op::Verify { which: Which::New },
                    sink,
                )
                .await?
            {
                // Restricted: the key authenticated, it may just not make this call.
                OpOutput::Verified(p) if p.alive() => {
                    run.facts.restored_at = Some(self.now());
                    self.evidence(sink, step, &key, Action::VerifyNew, json!({ "new_key_works": true, "answer": p, "text": "the replacement authenticates at the provider" }))?;
                    return Ok(ActionOutcome::Done);
                }
                OpOutput::Verified(p) => last = Some(p),
                _ => {}
            }
            if let Some(wait) = waits.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        Err(Failure::Failed {
            error: format!(
                "{step}: the replacement does not authenticate: {}",
                last.as_ref()
                    .map_or_else(|| "no answer".into(), Probe::describe)
            ),
            status: last.as_ref().and_then(Probe::status),
            retryable: true,
        })
    }

    // ---- step 3: audit ------------------------------------------------------------------

    /// Exposure window: `--exposed-since`, else the key's last rotation, else 30 days; to the
    /// revocation (or now).
    fn exposure_window(&self, run: &KeyRun) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = run.facts.revoked_at.unwrap_or_else(|| self.now());
        let start = self
            .params
            .exposed_since
            .or_else(|| {
                run.key
                    .issued_on()
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc())
            })
            .unwrap_or_else(|| baseline_start(end, 30));
        (start.min(end), end)
    }

    async fn fetch_usage<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        if !run.caps.usage {
            return skipped(format!(
                "{} has no usage API in keyfire: the rules use gateway logs only (pass --logs)",
                run.provider_def.kind
            ));
        }
        if run.facts.provider_key_id.is_none() {
            return skipped("the key was not located: no provider usage");
        }
        let (start, end) = self.exposure_window(run);
        let baseline_start = baseline_start(start, self.setup.inventory.policy.baseline_days);
        let key = run.key.id.clone();
        let report = match self
            .usage(run, step, Action::FetchUsage, baseline_start, end, sink)
            .await
        {
            Ok(Some(report)) => report,
            Ok(None) => return skipped("no usage returned"),
            Err(f) => return self.unavailable(sink, step, &key, Action::FetchUsage, f),
        };
        let in_window: Vec<_> = report.buckets.iter().filter(|b| b.end > start).collect();
        let in_window_events = report.events.iter().filter(|e| e.time >= start).count();
        let requests = in_window
            .iter()
            .fold(0u64, |a, b| a.saturating_add(b.requests));
        let cost: f64 = in_window.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0;
        let mut text = format!(
            "{requests} requests costing ${cost:.2} from {} to {} ({} buckets incl. {} baseline days, {} pages)",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%Y-%m-%d %H:%M"),
            report.buckets.len(),
            self.setup.inventory.policy.baseline_days,
            report.pages
        );
        if let Some(src) = &report.events_source {
            text.push_str(&format!(
                "; {}: {in_window_events} event(s) in the window",
                src.name
            ));
        }
        for note in &report.notes {
            text.push_str("; ");
            text.push_str(note);
        }
        self.evidence(
            sink,
            step,
            &key,
            Action::FetchUsage,
            json!({
                "text": text,
                "window": { "start": start, "end": end },
                "baseline_start": baseline_start,
                "pages": report.pages,
                "requests": requests,
                "tokens": in_window.iter().fold(0u64, |a, b| a.saturating_add(b.tokens())),
                "cost_usd": cost,
                "buckets": report.buckets,
                "events_source": report.events_source,
                "events_in_window": in_window_events,
                "events_total": report.events.len(),
                // Baseline events too: the rules compare the window with them.
                "events": report.events.iter().take(EVIDENCE_EVENTS).collect::<Vec<_>>(),
                "notes": report.notes,
            }),
        )?;
        run.usage = Some(report);
        if run.caps.audit {
            self.fetch_audit_log(run, step, start, end, sink).await?;
        }
        Ok(ActionOutcome::Done)
    }

    /// The provider's audit-log events about the key over the exposure window. An audit log
    /// the organization never enabled (or a failure to read it) is recorded and does not
    /// stop the audit: usage has been fetched and the rules can still run.
    async fn fetch_audit_log<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Ok(());
        };
        let key = run.key.id.clone();
        let op = Op::AuditLog { id, start, end };
        match self
            .provider_read(run, step, Action::FetchUsage, op, sink)
            .await
        {
            Ok(OpOutput::AuditEvents { events, pages }) => {
                let mut text = format!(
                    "{} audit-log event(s) about the key in the window ({pages} page(s))",
                    events.len()
                );
                for e in events.iter().take(10) {
                    text.push_str(&format!(
                        "; {} {} by {}{}",
                        e.at.format("%Y-%m-%d %H:%M"),
                        e.kind,
                        e.actor.as_deref().unwrap_or("unknown"),
                        e.ip_address
                            .as_deref()
                            .map(|ip| format!(" from {ip}"))
                            .unwrap_or_default()
                    ));
                }
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::FetchUsage,
                    json!({ "audit_log": { "events": events, "pages": pages }, "text": text }),
                )?;
                Ok(())
            }
            Ok(_) => Ok(()),
            // Evidence unavailable like any other source (the summary, report and drills list
            // it); the usage already fetched still feeds the rules.
            Err(Failure::Failed { error, status, .. }) => {
                let error = self.http.redactor().scrub(&error);
                self.evidence(sink, step, &key, Action::FetchUsage, json!({
                    "audit_log": { "unavailable": error, "status": status },
                    "unavailable": format!("the provider's audit log: {error}"),
                    "status": status,
                    "text": format!("evidence unavailable: the provider's audit log could not be read (is it enabled for the organization?): {error}; usage findings stand"),
                }))?;
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// Run every rule over the provider's usage (recorded by fetch_usage) and the gateway
    /// logs given when the incident opened, in one streaming pass.
    fn evaluate_rules<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        use crate::audit::{Evaluator, Event, SourceInfo, Window, expectations, logs};
        let inv = self.setup.inventory.clone();
        let (start, end) = self.exposure_window(run);
        let window = Window {
            baseline_start: baseline_start(start, inv.policy.baseline_days),
            start,
            end,
        };
        let mut eval = Evaluator::new(window, expectations(&inv, &run.key));
        // In memory when this process fetched it; after a resume, from the record (the usage
        // evidence, not the audit-log evidence the same action may add after it).
        let usage = match run.usage.take() {
            Some(r) => Some(r),
            None => crate::record::read_entries(&self.record.path())?
                .iter()
                .rev()
                .find(|e| {
                    e.kind == "evidence"
                        && e.data["key"] == run.key.id.as_str()
                        && e.data["action"] == "fetch_usage"
                        && e.data.get("buckets").is_some()
                })
                .map(|e| usage_from_evidence(&e.data)),
        };
        if let Some(usage) = usage {
            eval.source(SourceInfo::provider_usage(&run.provider_def.id));
            for b in &usage.buckets {
                eval.feed(&Event::bucket(
                    b.start,
                    b.end,
                    b.requests,
                    b.tokens(),
                    b.cost_usd,
                ));
            }
            // Per-request sources that come with usage: CloudTrail calls, database sessions.
            if let Some(src) = usage.events_source {
                for ev in &usage.events {
                    eval.feed(&Event {
                        ts: ev.time,
                        until: None,
                        source_ip: ev.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
                        status: src.statuses.then(|| ev.status()),
                        model: src.models.then(|| ev.action.clone()),
                        requests: 1,
                        tokens: 0,
                        cost_usd: None,
                    });
                }
                eval.source(src);
            }
        }
        // The store's value (read in memory by the redeploy step) also matches by its SHA-256:
        // gateways such as LiteLLM log that instead of the key.
        let matcher = logs::KeyMatch::for_key(
            &run.key,
            run.facts.provider_key_id.as_deref(),
            run.bag.old_key.as_ref().map(|v| v.expose()),
        );
        let paths = self.params.logs.clone();
        crate::audit::feed_logs(
            &mut eval,
            &run.key.id,
            &matcher,
            &paths,
            logs::OnBadLine::Count,
        )
        .map_err(|e| Failure::Failed {
            error: format!("{step}: {e}"),
            status: None,
            retryable: true,
        })?;
        let summary = eval.finish();
        let text = summary
            .rules
            .iter()
            .map(|r| match r.status {
                crate::audit::RuleStatus::Findings => {
                    format!("{}: {} finding(s)", r.rule, r.findings.len())
                }
                crate::audit::RuleStatus::Clean => format!("{}: clean", r.rule),
                crate::audit::RuleStatus::NotEvaluable => format!("{}: not evaluable", r.rule),
            })
            .chain(summary.notes.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ");
        let key = run.key.id.clone();
        let mut data = serde_json::to_value(&summary).unwrap_or_default();
        if let Value::Object(m) = &mut data {
            m.insert("text".into(), json!(text));
            m.insert("rules_with_findings".into(), json!(summary.fired()));
        }
        self.evidence(sink, step, &key, Action::EvaluateRules, data)?;
        Ok(ActionOutcome::Done)
    }

    // ---- step 4: report -----------------------------------------------------------------

    fn write_report<S: Sink>(&self, run: &mut KeyRun, step: StepId, sink: &mut S) -> Res {
        let key = run.key.id.clone();
        let dir = self.record.dir().to_path_buf();
        if self.params.keys.len() > 1 {
            // Rendering the whole campaign's report once per key would cost keys x entries.
            self.evidence(
                sink,
                step,
                &key,
                Action::WriteReport,
                json!({
                    "path": dir.join("report.md").display().to_string(),
                    "text": "the campaign's report is rendered once, when the incident closes",
                }),
            )?;
            return Ok(ActionOutcome::Done);
        }
        super::engine::failpoint("write_report");
        let report = super::engine::render_reports(self).map_err(|e| Failure::Failed {
            error: format!("{step}: cannot write the report: {e}"),
            status: None,
            retryable: true,
        })?;
        self.evidence(
            sink,
            step,
            &key,
            Action::WriteReport,
            json!({
                "path": dir.join("report.md").display().to_string(),
                "json": dir.join("report.json").display().to_string(),
                "deadline": report.notification.deadline,
            }),
        )?;
        Ok(ActionOutcome::Done)
    }

    // ---- step 5: reschedule -------------------------------------------------------------

    async fn update_inventory<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        use crate::inventory::edit::{Reschedule, apply_locked, read_and_plan};
        let inv = self.setup.inventory.clone();
        let Some(file) = inv.files.get(run.key.origin.file) else {
            return skipped("the inventory was not loaded from a file");
        };
        let r = Reschedule {
            key: run.key.id.clone(),
            last_rotated: self.now().date_naive(),
            // An incident shortens the interval; a scheduled rotation keeps it.
            rotation_days: match self.params.purpose {
                super::engine::Purpose::Incident => Some(inv.policy.after_incident_rotation_days),
                super::engine::Purpose::Rotation => None,
            },
        };
        let reason = match self.params.purpose {
            super::engine::Purpose::Incident => "incident",
            super::engine::Purpose::Rotation => "scheduled",
        };
        let interval = r
            .rotation_days
            .map_or("keep rotation_days".to_string(), |d| {
                format!("rotation_days = {d}")
            });
        let edit = read_and_plan(&file.path, &r).map_err(|e| Failure::Failed {
            error: format!("{step}: {e}"),
            status: None,
            retryable: true,
        })?;
        let key = run.key.id.clone();
        if !edit.changed() {
            return skipped("the inventory already has this rotation");
        }
        let plan = RequestPlan::write(
            format!("Set last_rotated = {} and {interval} for {key} in {}", r.last_rotated, file.path.display()),
            "EDIT",
            file.path.display().to_string(),
        )
        .json(json!({ "last_rotated": r.last_rotated, "rotation_days": r.rotation_days, "diff": edit.diff() }));
        if !self
            .gate_plan(run, step, Action::UpdateInventory, &plan, gate, sink)
            .await?
        {
            return Ok(ActionOutcome::Done);
        }
        // The approval showed the edit on the file as it was; other keys of the campaign (or
        // a person) may have edited it since. Apply it, under the file's lock, to the file as
        // it is now.
        let written = apply_locked(&file.path, &r).map_err(|e| Failure::Failed {
            error: format!("{step}: {e}"),
            status: None,
            retryable: true,
        })?;
        super::engine::failpoint("update_inventory:written");
        self.response(
            sink,
            step,
            &key,
            Action::UpdateInventory,
            true,
            json!({ "path": file.path.display().to_string() }),
        )?;
        if written.before != edit.before {
            self.evidence(sink, step, &key, Action::UpdateInventory, json!({
                "changed_since_approval": true,
                "text": "the file changed between the approval and the write: the edit was applied to it as it is now",
            }))?;
        }
        self.evidence(sink, step, &key, Action::UpdateInventory, json!({
            "rotation": { "key": key, "last_rotated": r.last_rotated, "rotation_days": r.rotation_days, "reason": reason },
        }))?;
        Ok(ActionOutcome::Done)
    }
}

/// The usage a `fetch_usage` evidence entry recorded (after a resume: the process that fetched
/// it is gone). Events beyond the recorded cap are not in the record.
fn usage_from_evidence(data: &Value) -> crate::provider::UsageReport {
    let s = &data["events_source"];
    crate::provider::UsageReport {
        buckets: serde_json::from_value(data["buckets"].clone()).unwrap_or_default(),
        pages: data["pages"].as_u64().unwrap_or(0) as u32,
        events: serde_json::from_value(data["events"].clone()).unwrap_or_default(),
        events_source: s["name"].as_str().map(|name| crate::audit::SourceInfo {
            name: name.to_string(),
            addresses: s["addresses"] == true,
            statuses: s["statuses"] == true,
            models: s["models"] == true,
            per_request: s["per_request"] == true,
        }),
        notes: Vec::new(),
    }
}

fn describe_output(out: &OpOutput) -> Value {
    match out {
        OpOutput::Located(Some(k)) => json!({ "found": k.id, "state": k.state }),
        OpOutput::Located(None) => json!({ "found": null }),
        OpOutput::Ambiguous(c) => json!({ "found": null, "ambiguous": c.len() }),
        OpOutput::Verified(p) => json!({ "authenticated": p.alive(), "probe": p }),
        OpOutput::Disabled => json!({ "disabled": true }),
        OpOutput::Revoked { already } => json!({ "revoked": true, "already": already }),
        OpOutput::Created { id, value } => json!({ "created": id, "hint": value.hint() }),
        OpOutput::Usage(r) => json!({ "buckets": r.buckets.len(), "pages": r.pages }),
        OpOutput::AuditEvents { events, pages } => {
            json!({ "events": events.len(), "pages": pages })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_start_at_the_edge_of_time_gives_an_empty_baseline_not_a_panic() {
        let edge = DateTime::<Utc>::MIN_UTC;
        assert_eq!(baseline_start(edge, 365), edge);
        let t = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        assert_eq!(baseline_start(t, 14), t - Duration::days(14));
    }
}
